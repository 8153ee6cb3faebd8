"""Built-in providers: one module per provider family, registered through entry points."""
