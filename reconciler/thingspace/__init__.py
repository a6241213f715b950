"""ThingSpace access: credentials, endpoint, a pure retry policy, the transport, auth and
the client that lists, registers and deregisters callback listeners of every family."""
