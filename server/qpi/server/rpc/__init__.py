"""gRPC adapters: servicers translate protobuf to service calls and back."""
