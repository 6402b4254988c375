pytest_plugins = ["switchboard.testing.fixtures"]
