"""The gRPC server process: settings, security, error mapping and wiring."""
