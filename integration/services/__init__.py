"""What the workers and the CLI do, given the process's runtime (passed first, explicitly):
sync the call history, deliver calls and events to the CRM, fetch recordings, apply the rules,
sweep due work. RQ entry points (``integration.jobs``) only resolve their arguments and call these."""
