"""The production profile's deployment: the instance configuration (``instance_yaml``) and the local
stack (``stack``: ``mlgov prod up|down|status``)."""
