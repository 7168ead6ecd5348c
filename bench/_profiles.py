"""Azure latency profiles for the benchmarks: the simulator's fault rules, Key Vault's creation time, directory
replication and the sandbox host's per-hop cost. Sources: bench/README.md ("Latency profiles").

A profile is applied to a running world with :func:`apply` and removed with :func:`clear`. Fault rules that match one
request add their latencies up (sandbox/azure/server.py `_apply_faults`), so the realistic rules never overlap: each
names its origin and method.
"""

from __future__ import annotations

from dataclasses import dataclass, field

CLOUD = ("login", "graph", "vault", "identity", "exchange")  # the Azure origins ("*" rules); not the Table proxies


@dataclass(frozen=True)
class Profile:
    """What a profile sets: per-route latency (ms), the creation time of a Key Vault certificate (s), replication
    delays by object kind (s), and the Durable backend's cost per queue hop (ms)."""

    name: str
    rules: list[dict] = field(default_factory=list)
    creation_seconds: float = 0.0
    replication: dict[str, float] = field(default_factory=dict)
    hop_ms: float = 0.0
    # the latency of one call, by (origin, method): what the data-dependency bound charges a call on its chain
    latency: dict[tuple[str, str], float] = field(default_factory=dict)

    def call_ms(self, origin: str, method: str) -> float:
        """The latency this profile adds to one call."""
        return self.latency.get((origin, method), self.latency.get((origin, "*"), 0.0))


def flat(ms: float) -> Profile:
    """The same latency on every Azure call (login, graph, vault, identity, exchange); nothing else."""
    return Profile(name=f"flat {ms:g} ms", rules=[{"origin": "*", "latencyMs": ms}] if ms else [],
                   latency={(origin, "*"): ms for origin in CLOUD})


# The realistic profile. Per call, in ms; every figure and its source is in bench/README.md.
TOKEN_MS = 300          # Entra ID token endpoint (POST /oauth2/v2.0/token) and discovery
IDENTITY_MS = 300       # the App Service managed-identity endpoint (asks Entra ID on a miss)
GRAPH_READ_MS = 150     # Microsoft Graph GET
GRAPH_WRITE_MS = 300    # Microsoft Graph POST / PATCH / PUT / DELETE (a directory write)
VAULT_MS = 100          # Key Vault (certificates, keys, sign, secrets)
EXCHANGE_MS = 500       # Exchange Online's admin API (InvokeCommand)
CREATION_S = 3.0        # a new self-signed RSA-2048 certificate stays inProgress this long
SP_REPLICATION_S = 5.0  # a new service principal cannot be referenced (nor sign in) this long
HOP_MS = 100            # Durable Azure Storage provider: one queue hop (two per activity)

WRITE_METHODS = ("POST", "PATCH", "PUT", "DELETE")


def realistic() -> Profile:
    """Per-route latencies for Graph reads and writes, the token endpoint, the managed identity, Key Vault and
    Exchange; certificate creation pending for seconds; replication delay on new service principals; a per-hop cost
    for the Durable backend."""
    rules = [{"origin": "login", "latencyMs": TOKEN_MS},
             {"origin": "identity", "latencyMs": IDENTITY_MS},
             {"origin": "graph", "method": "GET", "latencyMs": GRAPH_READ_MS},
             *({"origin": "graph", "method": m, "latencyMs": GRAPH_WRITE_MS} for m in WRITE_METHODS),
             {"origin": "vault", "latencyMs": VAULT_MS},
             {"origin": "exchange", "latencyMs": EXCHANGE_MS}]
    latency = {("login", "*"): TOKEN_MS, ("identity", "*"): IDENTITY_MS, ("graph", "GET"): GRAPH_READ_MS,
               **{("graph", m): GRAPH_WRITE_MS for m in WRITE_METHODS}, ("vault", "*"): VAULT_MS,
               ("exchange", "*"): EXCHANGE_MS}
    return Profile(name="realistic", rules=rules, creation_seconds=CREATION_S,
                   replication={"servicePrincipal": SP_REPLICATION_S}, hop_ms=HOP_MS, latency=latency)


def apply(world, profile: Profile) -> None:
    """Install the profile in the simulator (rules, replication, creation time) and the host (hop cost)."""
    world.simulator.set_faults(profile.rules, replication_delay=profile.replication)
    world.simulator.admin("PUT", "/vault", {"creationDelaySeconds": profile.creation_seconds})
    world.set_hop_delay(profile.hop_ms)


def clear(world) -> None:
    """No latency, no replication delay, no creation time, no hop cost."""
    apply(world, Profile(name="none"))
