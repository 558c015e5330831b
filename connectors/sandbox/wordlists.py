"""Words the portfolio generator builds titles, teams and OKRs from.

Real trackers hold more than ASCII: city names with umlauts, product names with ampersands,
and the odd title that quotes an HTML tag. A few entries here carry them on purpose so every
layer (JSON, SQL, the HTML report, email) meets them in tests.
"""

from __future__ import annotations

VERBS = (
    "Improve", "Rebuild", "Simplify", "Automate", "Migrate", "Harden", "Streamline", "Redesign",
    "Introduce", "Retire", "Localise", "Instrument", "Consolidate", "Speed up", "Secure",
    "Standardise", "Launch", "Extend", "Replace", "Document",
)  # fmt: skip

OBJECTS = (
    "checkout flow", "refund handling", "invoice export", "onboarding wizard", "search ranking",
    "login page", "password reset", "notification service", "order history", "payment retries",
    "fraud scoring", "product catalogue", "mobile release pipeline", "feature flags",
    "data warehouse loads", "event tracking", "customer support inbox", "pricing rules",
    "subscription renewals", "audit trail", "accessibility of forms", "API rate limiting",
    "consent banner", "recommendation widget", "shipping estimates", "tax calculation",
    "partner dashboard", "error reporting", "session handling", "dark mode",
)  # fmt: skip

CONTEXTS = (
    "for returning customers", "on mobile web", "in the EU region", "for enterprise accounts",
    "before peak season", "for the Android app", "in the partner portal", "for new markets",
    "across all brands", "for guest users", "in the admin console", "for B2B invoices",
)  # fmt: skip

PERSONAS = (
    "shopper", "support agent", "finance analyst", "store manager", "partner", "new customer",
    "account owner", "data scientist",
)  # fmt: skip

BENEFITS = (
    "I can finish faster", "I trust the numbers", "I am not asked twice", "I can self-serve",
    "fewer tickets reach support", "I see what changed", "I get paid on time",
)  # fmt: skip

BUG_SYMPTOMS = (
    "shows the wrong total", "times out", "crashes on rotate", "loses the draft",
    "sends duplicate emails", "rounds VAT incorrectly", "ignores the locale",
    "returns 500 on empty cart", "renders blank in Safari", "double-charges on retry",
)  # fmt: skip

BUG_CONDITIONS = (
    "the currency is CHF", "the session expires", "two tabs are open", "the name has an accent",
    "the cart is empty", "the user is offline", "a coupon is applied", "daylight saving ends",
)  # fmt: skip

TASKS = (
    "Upgrade the PostgreSQL driver", "Rotate API credentials", "Add dashboards for latency",
    "Write the runbook", "Clean up feature flags", "Bump Kotlin to the latest release",
    "Add contract tests", "Tune the connection pool", "Review the threat model",
    "Archive unused buckets", "Set up load test", "Pair on the migration script",
)  # fmt: skip

SUBTASK_STEPS = (
    "Write unit tests", "Update API docs", "Add metrics", "Code review fixes", "QA sign-off",
    "Translate strings", "Design review", "Feature flag rollout", "Clean up logging",
)  # fmt: skip

THEMES = (
    "Expand into the DACH market", "Modernise the payment platform", "Self-service for partners",
    "One customer identity", "Real-time analytics", "Mobile-first storefront",
    "Cut cost to serve", "Trust & safety programme", "Accessibility for everyone",
    "Faster delivery pipeline", "Enterprise readiness", "Subscription business",
)  # fmt: skip

# Titles that real trackers contain and that break naive code: non-ASCII and HTML-ish text.
UNICODE_TITLES = (
    "Localise invoices for Zürich and Genève",
    "Support São Paulo tax IDs (CNPJ)",
    "Fix sorting of names like Ødegård and Åsa",
    "Add Kraków and Łódź to the delivery zones",
    "Show prices in ¥ for the 日本 storefront",
    "Handle naïve café names in search",
    "Emoji in product names break exports 🚀",
    "Greek month names (Μάιος) in date picker",
)  # fmt: skip

MARKUP_TITLES = (
    "Escape <script> tags in review comments",
    "R&D cost centre mapping is wrong",
    "Show <Total> & VAT in the order summary",
    "Support A/B & multivariate tests",
    "Terms & Conditions link opens <blank> tab",
)  # fmt: skip

NOISE_LABELS = (
    "backend", "frontend", "tech-debt", "customer-request", "security", "compliance", "ux",
    "performance", "spike", "q-commit", "needs-design", "a11y",
)  # fmt: skip

OBJECTIVES = (
    "Delight customers at checkout", "Grow in new markets", "Run a reliable platform",
    "Make partners self-sufficient", "Decide with trustworthy data", "Ship faster and safer",
    "Lower the cost to serve", "Earn customer trust", "Make the product accessible",
    "Build a subscription business", "Win enterprise customers", "Empower support",
)  # fmt: skip

# (title template, target, baseline): a baseline above its target means lower is better.
KEY_RESULT_METRICS = (
    ("Raise checkout conversion to {target}%", 3.5, 2.5),
    ("Cut p95 page load to {target} ms", 800.0, 1400.0),
    ("Reach {target} paying partners", 250.0, 120.0),
    ("Lower monthly churn to {target}%", 2.0, 3.5),
    ("Resolve {target}% of tickets in self-service", 40.0, 20.0),
    ("Deploy {target} times a week per team", 10.0, 3.0),
    ("Bring incident count to {target} per quarter", 4.0, 12.0),
    ("Grow DACH revenue to {target} k€", 900.0, 600.0),
    ("Reach NPS {target}", 45.0, 30.0),
    ("Cut cost per order to {target} ¢", 35.0, 60.0),
    ("Pass {target}% of WCAG checks", 95.0, 70.0),
    ("Onboard {target} enterprise accounts", 12.0, 4.0),
)  # fmt: skip

OWNERS = (
    "Amara Okafor", "Jonas Weiß", "Priya Raman", "Lucía Fernández", "Mei Chen", "Tom Becker",
    "Sofia Rossi", "Ola Nordmann",
)  # fmt: skip

JIRA_PROJECTS = (
    ("PAY", "Payments"), ("WEB", "Web Storefront"), ("MOB", "Mobile Apps"),
    ("DATA", "Data Platform"), ("CORE", "Core Services"), ("OPS", "Operations"),
    ("IDN", "Identity"), ("SRCH", "Search"),
)  # fmt: skip

JIRA_COMPONENTS = ("API", "Checkout", "Billing", "Reporting", "Mobile", "Infrastructure", "UI")

TEAMS = (
    "Falcon", "Kestrel", "Heron", "Lynx", "Otter", "Puffin", "Raven", "Swift", "Bison", "Marten",
)  # fmt: skip

AREAS = ("Payments", "Web", "Mobile", "Data", "Core", "Operations", "Identity", "Search")
