"""Who is at the browser: the OpenID Connect relying party that asks an identity
provider (e-legitimation) before a signer may sign. The rules that match a login to
the expected signer and record it are in ``justering.workflow.identity``."""

__all__: list[str] = []
