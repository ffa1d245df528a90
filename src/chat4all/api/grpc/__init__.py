"""The gRPC API (`proto/chat4all/v1/`): servicers over the application services."""

from chat4all.api.grpc.server import ALL_SERVICES, GrpcServer, local_services, start_grpc_server

__all__ = ["ALL_SERVICES", "GrpcServer", "local_services", "start_grpc_server"]
