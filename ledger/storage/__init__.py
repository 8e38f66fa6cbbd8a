"""Storage: the only code that speaks SQL; `protocol.LogStore` is the interface, one implementation a file."""
