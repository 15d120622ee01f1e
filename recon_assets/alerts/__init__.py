"""Alerts for failed asset checks and failed runs, by Slack webhook and e-mail.

``messages`` words an :class:`Alert`, ``senders`` delivers it, ``sensors`` finds what to alert
on. Importing this package does not import Dagster; the sensor lives in
``recon_assets.alerts.sensors``.
"""

from recon_assets.alerts.messages import Alert
from recon_assets.alerts.senders import AlertSender

__all__ = ["Alert", "AlertSender"]
