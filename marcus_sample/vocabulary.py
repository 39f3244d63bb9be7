"""The words a sample is drawn from: agent names, roles, projects, task titles and messages."""

ANIMALS = tuple("unicorn otter lynx falcon badger heron panda koala fox raven gecko wombat".split())
ROLES = (
    ("backend", ("python", "fastapi", "postgresql", "sqlalchemy")),
    ("frontend", ("typescript", "react", "css", "vite")),
    ("fullstack", ("python", "typescript", "react", "docker")),
    ("qa", ("pytest", "playwright", "testing")),
    ("devops", ("docker", "kubernetes", "terraform", "github-actions")),
)
MODELS = ("claude-sonnet-4-5", "claude-opus-4-1", "gpt-5", "qwen3-coder-30b")
PROJECT_NAMES = (
    ("ShopFront API", "e-commerce"),
    ("Recipe Planner", "consumer"),
    ("Fleet Tracker", "logistics"),
    ("Clinic Scheduler", "healthcare"),
    ("Ledger Sync", "fintech"),
)
TASK_VERBS = (
    "Implement",
    "Design",
    "Write tests for",
    "Refactor",
    "Add validation to",
    "Document",
    "Set up",
    "Optimize",
    "Fix bugs in",
    "Add caching to",
)
TASK_OBJECTS = (
    "user accounts",
    "order checkout",
    "product catalog",
    "search endpoint",
    "payment webhooks",
    "inventory sync",
    "auth middleware",
    "admin dashboard",
    "email notifications",
    "rate limiter",
    "database schema",
    "CI pipeline",
    "image uploads",
    "audit trail",
    "reporting API",
    "session handling",
)
LABELS = ("backend", "frontend", "api", "database", "testing", "infra", "security", "docs")
PRIORITIES = ("low", "medium", "medium", "high", "high", "urgent")
ESTIMATED_HOURS: tuple[float, ...] = (1, 2, 2.5, 3, 4, 4.0, 6, 8.0)
PROGRESS_MESSAGES = (
    "Scaffolding in place, reading existing code",
    "Core logic implemented, iterating on edge cases",
    "All unit tests passing, cleaning up",
    "Schema migration written and applied locally",
    "Endpoint wired up, adding request validation",
    "Halfway there \u2014 integration tests next",
    "Refactored helpers, coverage at 84%",
    "Waiting on CI, fixing lint warnings",
    "Implemented happy path \u2192 now error handling",
    "Docs and examples updated",
)
DONE_MESSAGES = (
    "Task completed: all acceptance criteria met",
    "\u2705 Done, PR merged and board updated",
    "Completed implementation with tests and docs",
)
BLOCKERS = (
    (
        "Database migration conflicts with the orders table owned by another task",
        "high",
        "dependency",
    ),
    ("CI runner out of disk space, cannot run the test suite", "medium", "infrastructure"),
    ("API contract for payments is undefined, need a decision", "high", "requirements"),
    ("Tool call to the kanban provider keeps timing out", "medium", "tool_error"),
    ("Missing credentials for the staging object store", "low", "access"),
)
TOOL_ERRORS = (
    "Kanban sync failed: database is locked",
    "Timeout waiting for AI engine response after 30s",
    "Object of type datetime is not JSON serializable",
    "Task not found on board",
)
SENTENCES = (
    "Follow the existing module layout and keep public functions typed.",
    "Reuse the shared database session factory instead of opening new connections.",
    "Every endpoint must validate its payload with the pydantic models in schemas/.",
    "Write unit tests first for the pure functions, then one integration test per endpoint.",
    "Log decisions that affect other tasks with log_decision so dependants can adapt.",
    "Report progress at 25%, 50% and 75% so the board stays current.",
    "Do not change the public API of the auth module without logging a decision.",
    "Prefer small commits; each one should keep the test suite green.",
    "Use the repository's ruff and mypy settings; CI rejects warnings.",
    "Configuration comes from environment variables, never from hard-coded values.",
    "The checkout flow depends on this task, so keep the interface stable.",
    "Cache invalidation happens on write; reads may be up to 30 seconds stale.",
    "Handle the empty and the very large input explicitly and test both.",
    "Timestamps are stored in UTC and rendered in the user's zone only in the UI.",
    "Put fixtures in tests/conftest.py and keep them function-scoped.",
    "If the upstream contract is unclear, report a blocker instead of guessing.",
    "Performance budget: p95 under 200 ms for list endpoints with 10k rows.",
    "Migrations must be reversible and tested against a copy of production data.",
    "Use feature flags for anything user-visible that is not finished.",
    "Artifacts (specs, diagrams) go to docs/ and are registered with log_artifact.",
    "Marcus assigned this task because its dependencies are complete \u2714",
    "Ask for context with get_task_context before touching shared modules.",
)
THOUGHTS = (
    "Agent has matching skills and no active task; scoring candidate tasks",
    "Dependencies of the top candidate are complete, assignment is safe",
    "Board refresh shows two tasks moved to done since last check",
    "Worker progress is consistent with the estimate",
    "Lease renewed after progress report",
    "No unassigned tasks match this agent's skills right now",
)
RATIONALES = (
    "Highest priority unblocked task matching the agent's skills",
    "Task unblocks three dependants and the agent worked on related code",
    "Only remaining task in the current phase",
    "Balancing load: this agent has the fewest completed tasks today",
)
