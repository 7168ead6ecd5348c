"""Stand-in for the Azure Functions host: runs a Function App offline (HTTP, Durable replay, timers, client API).

``python -m sandbox.host --help``.  It never imports the product except the app module it serves.
"""
