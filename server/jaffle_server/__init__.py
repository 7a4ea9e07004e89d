"""What runs in the Dagster service containers: the login gate in front of the webserver, the
instance class, the first-start secrets, and the operator commands (jaffle-users)."""
