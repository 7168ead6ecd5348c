"""certauth Function App: composition only.

The Functions host (and sandbox/host) load ``app`` from here. Each workflow lives in its own Blueprint
under ``functions/`` and is registered below; nothing else belongs in this file. Keep imports here
light (cold start): heavy SDKs are imported lazily inside ``shared/``.
"""

import azure.durable_functions as df
import azure.functions as func

from functions.alerts import bp as alerts_bp
from functions.certificates import bp as certificates_bp
from functions.expiry import bp as expiry_bp
from functions.links import bp as links_bp
from functions.manual import bp as manual_bp
from functions.offboarding import bp as offboarding_bp
from functions.onboarding import bp as onboarding_bp
from functions.openapi import bp as openapi_bp
from functions.operators import bp as operators_bp
from functions.progress import bp as progress_bp
from functions.rotation import bp as rotation_bp

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)

app.register_functions(onboarding_bp)
app.register_functions(manual_bp)
app.register_functions(progress_bp)
app.register_functions(certificates_bp)
app.register_functions(expiry_bp)
app.register_functions(alerts_bp)
app.register_functions(rotation_bp)
app.register_functions(offboarding_bp)
app.register_functions(links_bp)
app.register_functions(operators_bp)
app.register_functions(openapi_bp)
