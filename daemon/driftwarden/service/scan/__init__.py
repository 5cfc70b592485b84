"""The scan pipeline: per stack, ingest its history and audit its state, then each check
(one recorded engine run: rated, attributed, folded into findings, notified) and the
remediation its policy asks for."""
