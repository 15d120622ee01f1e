from recon_assets_tests.alerts.conftest import webhook  # noqa: F401  (shared fixture)
