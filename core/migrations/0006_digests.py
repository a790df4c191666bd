from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('milestones', '0005_signoff')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Subscription',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('team_id', fields.CharField(max_length=32)),
                ('channel_id', fields.CharField(max_length=32)),
                ('repository', fields.ForeignKeyField('milestones.Repository', source_field='repository_id', null=True, db_constraint=True, to_field='id', related_name='subscriptions', on_delete=OnDelete.CASCADE)),
                ('milestone', fields.ForeignKeyField('milestones.Milestone', source_field='milestone_id', null=True, db_constraint=True, to_field='id', related_name='subscriptions', on_delete=OnDelete.CASCADE)),
                ('scope_key', fields.CharField(max_length=40)),
                ('kind', fields.CharField(max_length=10)),
                ('weekday', fields.IntField(null=True)),
                ('at', fields.CharField(max_length=5)),
                ('zone', fields.CharField(max_length=64)),
                ('created_by', fields.CharField(max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'subscription', 'app': 'milestones', 'unique_together': (('team_id', 'channel_id', 'scope_key'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='DigestRun',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('subscription', fields.ForeignKeyField('milestones.Subscription', source_field='subscription_id', db_constraint=True, to_field='id', related_name='runs', on_delete=OnDelete.CASCADE)),
                ('scheduled_for', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('status', fields.CharField(default='claimed', max_length=10)),
                ('attempts', fields.IntField(default=0)),
                ('claimed_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('finished_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('error', fields.TextField(null=True, unique=False)),
                ('reported', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
            ],
            options={'table': 'digest_run', 'app': 'milestones', 'unique_together': (('subscription', 'scheduled_for'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]
