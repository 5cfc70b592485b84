"""driftwarden: drift detection, audit and guarded remediation for Pulumi stacks."""

__version__ = "0.1.0"
