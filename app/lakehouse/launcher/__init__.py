"""The native stack: installs the artifacts, starts each service under its supervisor in order,
registers the connectors, and says what runs (`stack.Stack`); the compose twin's checks."""
