"""Where real compute runs for the simulation: the Ray oracle with its device-shard and
compute actors, its memo-and-batch path and its pending results (``ray_oracle``, ``ray_memo``,
``ray_pending``, ``shards``), the cluster connection (``cluster``) and the replay oracle
(``replay``). The in-process engine that these actors host is ``server.engine``."""
