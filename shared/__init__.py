"""certauth domain logic and Azure clients: no Azure Functions imports, no I/O at import time."""
