from tortoise import migrations
from tortoise.migrations import operations as ops
from core.migrations._operations import AddFieldKeepingRows
import functools
from core.enums import DeliveryStatus, InstallationStatus
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('milestones', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Delivery',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('guid', fields.CharField(unique=True, max_length=64)),
                ('event', fields.CharField(max_length=64)),
                ('action', fields.CharField(null=True, max_length=64)),
                ('repository', fields.CharField(null=True, max_length=200)),
                ('installation_id', fields.BigIntField(null=True)),
                ('payload', fields.TextField(unique=False)),
                ('status', fields.CharEnumField(default=DeliveryStatus.PENDING, description='PENDING: pending\nPROCESSING: processing\nDONE: done\nIGNORED: ignored\nFAILED: failed', enum_type=DeliveryStatus, max_length=10)),
                ('attempts', fields.IntField(default=0)),
                ('next_attempt_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('locked_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('received_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('finished_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('error', fields.TextField(null=True, unique=False)),
                ('note', fields.TextField(null=True, unique=False)),
            ],
            options={'table': 'delivery', 'app': 'milestones', 'indexes': [Index(fields=['status', 'next_attempt_at', 'id']), Index(fields=['status', 'locked_until'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Installation',
            fields=[
                ('id', fields.BigIntField(primary_key=True, unique=True, db_index=True)),
                ('account', fields.CharField(max_length=200)),
                ('status', fields.CharEnumField(default=InstallationStatus.ACTIVE, description='ACTIVE: active\nSUSPENDED: suspended\nDELETED: deleted', enum_type=InstallationStatus, max_length=10)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'installation', 'app': 'milestones', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PullRequest',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('repository', fields.ForeignKeyField('milestones.Repository', source_field='repository_id', db_constraint=True, to_field='id', related_name='pull_requests', on_delete=OnDelete.CASCADE)),
                ('number', fields.IntField()),
                ('title', fields.TextField(default='', unique=False)),
                ('url', fields.CharField(null=True, max_length=500)),
                ('state', fields.CharField(default='open', max_length=10)),
                ('draft', fields.BooleanField(default=False)),
                ('head_sha', fields.CharField(max_length=64)),
                ('base_ref', fields.CharField(max_length=255)),
                ('milestone', fields.ForeignKeyField('milestones.Milestone', source_field='milestone_id', null=True, db_constraint=True, to_field='id', related_name='pull_requests', on_delete=OnDelete.SET_NULL)),
                ('source_updated_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'pull_request', 'app': 'milestones', 'unique_together': (('repository', 'number'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        AddFieldKeepingRows(
            model_name='Launch',
            name='warnings',
            field=fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads),
            db_default=[],
        ),
        AddFieldKeepingRows(
            model_name='Repository',
            name='label_aliases',
            field=fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads),
            db_default={},
        ),
    ]
