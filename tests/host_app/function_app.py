"""The sandbox host's own test Function App (not the product): one DFApp composed of blueprints."""

import azure.durable_functions as df
import azure.functions as func
from blueprints import durable, fidelity, patterns, web

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(web.bp)
app.register_functions(durable.bp)
app.register_functions(fidelity.bp)
app.register_functions(patterns.bp)
