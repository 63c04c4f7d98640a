"""Built-in rules, one module per rule family, in code order."""
