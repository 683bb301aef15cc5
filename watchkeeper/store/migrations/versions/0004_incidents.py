"""One incident lifecycle: episodes, ITIL records, recovery counting, lifecycle events, window alerts.

- `problems.episode`: a problem that comes back after its reopen window is a new incident (a new
  row, fingerprint `model:version:kind#2`), not the old one reopened.
- `problems.record`: the ITIL record a problem is: incident, problem (a cause that recurred) or
  change (a promotion waiting for approval).
- `problems.healthy_windows`: newest windows in a row without the problem; N of them resolve it.
- `outbox.event`: what a row tells the channel (raised, resolved); the uniqueness of a delivery
  now includes it, so the resolution of occurrence 3 is not taken for its alert.
- `window_alerts`: the alerts each window's verdict raised, with their full record, so a later
  re-materialisation that queues nothing new still shows them.

Revision ID: 0004_incidents
Revises: 0003_audit
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_incidents"
down_revision = "0003_audit"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("problems") as problems:
        problems.add_column(sa.Column("episode", sa.Integer, nullable=False, server_default="1"))
        problems.add_column(sa.Column("record", sa.String(10), nullable=False, server_default="incident"))
        problems.add_column(sa.Column("healthy_windows", sa.Integer, nullable=False, server_default="0"))
    with op.batch_alter_table("outbox") as outbox:
        outbox.add_column(sa.Column("event", sa.String(10), nullable=False, server_default="raised"))
        outbox.drop_constraint("uq_outbox_delivery", type_="unique")
        outbox.create_unique_constraint("uq_outbox_delivery", ["fingerprint", "channel", "occurrence", "event"])
    op.create_table(
        "window_alerts",
        sa.Column("model", sa.String(200), primary_key=True), sa.Column("window", sa.String(10), primary_key=True),
        sa.Column("fingerprint", sa.String(300), primary_key=True),
        sa.Column("record", sa.String(10), nullable=False), sa.Column("payload_json", sa.Text, nullable=False))


def downgrade() -> None:
    op.drop_table("window_alerts")
    with op.batch_alter_table("outbox") as outbox:
        outbox.drop_constraint("uq_outbox_delivery", type_="unique")
        outbox.create_unique_constraint("uq_outbox_delivery", ["fingerprint", "channel", "occurrence"])
        outbox.drop_column("event")
    with op.batch_alter_table("problems") as problems:
        for column in ("healthy_windows", "record", "episode"):
            problems.drop_column(column)
