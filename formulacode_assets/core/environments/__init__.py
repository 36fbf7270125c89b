"""Build environments: install analysis, candidate ``build_env.sh`` scripts, validators and the context registry."""
