pytest_plugins = ["tests.daytona_server.plugin"]
