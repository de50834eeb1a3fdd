"""The Envoy gateway: REST and native gRPC on one listener."""
