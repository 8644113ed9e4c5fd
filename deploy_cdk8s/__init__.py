"""cdk8s app that synthesizes every Kubernetes object of the Fingerprint API and its observability stack."""
