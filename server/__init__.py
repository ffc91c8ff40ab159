"""The server side: replicas, batching, routing and server-worker actors."""
