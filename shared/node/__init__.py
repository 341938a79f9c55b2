"""Code that runs inside each conversion task on the node: standard library only, carried in the task's command line."""
