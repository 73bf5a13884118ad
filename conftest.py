pytest_plugins = ["portal.testing"]
