from tortoise import migrations
from tortoise.migrations import operations as ops
from core.migrations._operations import AddFieldKeepingRows
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('milestones', '0004_slack')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Approver',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('milestone', fields.ForeignKeyField('milestones.Milestone', source_field='milestone_id', db_constraint=True, to_field='id', related_name='approvers', on_delete=OnDelete.CASCADE)),
                ('member', fields.CharField(max_length=100)),
                ('added_by', fields.CharField(max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('removed_by', fields.CharField(null=True, max_length=64)),
                ('removed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('active_member', fields.CharField(null=True, max_length=100)),
            ],
            options={'table': 'approver', 'app': 'milestones', 'unique_together': (('milestone', 'active_member'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='SignoffRequest',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('milestone', fields.ForeignKeyField('milestones.Milestone', source_field='milestone_id', db_constraint=True, to_field='id', related_name='signoff_requests', on_delete=OnDelete.CASCADE)),
                ('team_id', fields.CharField(max_length=32)),
                ('channel_id', fields.CharField(max_length=32)),
                ('message_ts', fields.CharField(max_length=32)),
                ('requested_by', fields.CharField(max_length=64)),
                ('live_for', fields.IntField(null=True, unique=True)),
                ('replaced_by', fields.ForeignKeyField('milestones.SignoffRequest', source_field='replaced_by_id', null=True, db_constraint=True, to_field='id', related_name='replaced', on_delete=OnDelete.SET_NULL)),
                ('shown_digest', fields.CharField(null=True, max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'signoff_request', 'app': 'milestones', 'unique_together': (('channel_id', 'message_ts'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='UserGroup',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('handle', fields.CharField(unique=True, max_length=100)),
                ('group_id', fields.CharField(null=True, max_length=32)),
                ('members', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('refreshed_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'user_group', 'app': 'milestones', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Milestone',
            name='announced_complete',
            field=fields.BooleanField(null=True),
        ),
        AddFieldKeepingRows(
            model_name='Milestone',
            name='closed_on_complete',
            field=fields.BooleanField(default=False),
            db_default=False,
        ),
        AddFieldKeepingRows(
            model_name='Milestone',
            name='completed_with',
            field=fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads),
            db_default=[],
        ),
    ]
