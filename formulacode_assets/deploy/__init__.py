"""What the deployments load besides the definitions: the run launcher that forwards the settings."""
