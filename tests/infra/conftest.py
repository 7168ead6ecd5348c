"""tests/infra: the deployment's offline checks. The least-privilege test drives the product end to end, with the
e2e suite's own `product` fixture (re-exported here, not copied)."""

from tests.e2e.conftest import product  # noqa: F401
