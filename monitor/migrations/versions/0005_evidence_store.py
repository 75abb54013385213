"""The evidence store: each clip's chain of custody, retention (purged clips), and holds on
incidents. Clips already uploaded begin their custody with their upload.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import monitor.db


revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('evidence_custody',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('evidence_pk', sa.Integer(), nullable=False),
    sa.Column('at', monitor.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['evidence_pk'], ['evidence.id'], name=op.f('fk_evidence_custody_evidence_pk_evidence')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_evidence_custody'))
    )
    with op.batch_alter_table('evidence_custody', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_evidence_custody_evidence_pk'), ['evidence_pk'], unique=False)

    with op.batch_alter_table('evidence', schema=None) as batch_op:
        batch_op.add_column(sa.Column('purged_at', monitor.db.UTCDateTime(timezone=True), nullable=True))

    # Added NOT NULL with a default, in one step, and the default as plain text ('0' is
    # false to both databases): anything else makes Alembic rebuild `alerts` on SQLite, and
    # dropping the old table fails on the rows of the tables that refer to it.
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('hold', sa.Boolean(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('hold_reason', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('held_at', monitor.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('held_by', sa.String(length=200), nullable=True))

    _custody_of_earlier_uploads()


def _custody_of_earlier_uploads() -> None:
    # Plain tables, not the models: these are the columns as they are at this revision.
    evidence = sa.table(
        'evidence',
        sa.column('id', sa.Integer()),
        sa.column('device_id', sa.String()),
        sa.column('size_bytes', sa.BigInteger()),
        sa.column('uploaded_at', monitor.db.UTCDateTime()),
        sa.column('uploaded_sha256', sa.String()),
        sa.column('stored_path', sa.String()),
    )
    custody = sa.table(
        'evidence_custody',
        sa.column('evidence_pk', sa.Integer()),
        sa.column('at', monitor.db.UTCDateTime()),
        sa.column('actor', sa.String()),
        sa.column('action', sa.String()),
        sa.column('details', sa.JSON()),
    )
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(evidence).where(evidence.c.stored_path.is_not(None)).order_by(evidence.c.id)
    ).all()
    for ev in rows:
        conn.execute(
            custody.insert().values(
                evidence_pk=ev.id,
                at=ev.uploaded_at,
                actor=f'device:{ev.device_id}',
                action='uploaded',
                # Said so: this entry was written from the evidence record, not at the upload.
                details={
                    'sha256': ev.uploaded_sha256,
                    'bytes': ev.size_bytes,
                    'where': ev.stored_path,
                    'recorded': 'from the evidence record, at the upgrade to revision 0005',
                },
            )
        )


def downgrade() -> None:
    with op.batch_alter_table('evidence_custody', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_evidence_custody_evidence_pk'))

    op.drop_table('evidence_custody')

    # Dropped in place (SQLite 3.35 or newer), for the reason given in upgrade().
    with op.batch_alter_table('evidence', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('purged_at')

    with op.batch_alter_table('alerts', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('held_by')
        batch_op.drop_column('held_at')
        batch_op.drop_column('hold_reason')
        batch_op.drop_column('hold')
