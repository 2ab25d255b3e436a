"""Stage module placeholder: filled in by the monitoring work (exports the lists definitions.py wires)."""

ASSETS: list = []
CHECKS: list = []
JOBS: list = []
SENSORS: list = []
SCHEDULES: list = []
