"""`strangler demo`: the migration story on the bundled monolith, as an ordered list of steps.

Each name in STEPS is a module `strangler.demo.<name>` with a one-line `TITLE` and
`run(ctx: DemoContext) -> None`. Steps share one DemoContext; a step raises DemoError to stop
the story with a message. Later steps may rely on what earlier ones left in the context
(the running monolith's URL, its environment and database, `ctx.facts`).
"""

STEPS: list[str] = [
    "analyze",
    "database",
    "monolith",
    "checkout",
    "cdc",
    "parity",
    "proxy",
    "migrate",
]
