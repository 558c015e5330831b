"""The alignment report: rendering (HTML + text, charts), files and email delivery.

Entry point for the pipeline: `reports.publish.publish_report(result, out_dir, ...)`.
"""
