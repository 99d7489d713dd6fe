"""Our reusable pyinfra building blocks: the facts, the item operations and the runner,
plus the few operations pyinfra has no equivalent for (login passwords, host-made secrets)."""
