"""What every starwrs process shares: the deployment, its PKI, the TLS frame channel
and service supervision (DESIGN.md, Layout)."""
