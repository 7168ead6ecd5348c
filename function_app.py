"""certauth Function App: composition only.

The Functions host (and sandbox/host) load ``app`` from here. Each workflow lives in its own Blueprint
under ``functions/`` and is registered below; nothing else belongs in this file. Keep imports here
light (cold start): heavy SDKs are imported lazily inside ``shared/``.
"""

import azure.durable_functions as df
import azure.functions as func

from functions.certificates import bp as certificates_bp
from functions.manual import bp as manual_bp
from functions.onboarding import bp as onboarding_bp

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)

app.register_functions(onboarding_bp)
app.register_functions(manual_bp)
app.register_functions(certificates_bp)
