from tortoise import migrations
from tortoise.migrations import operations as ops
from core.enums import CheckKind
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('milestones', '0002_github')]

    initial = False

    operations = [
        ops.CreateModel(
            name='GateCheck',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('pull_request', fields.ForeignKeyField('milestones.PullRequest', source_field='pull_request_id', db_constraint=True, to_field='id', related_name='gate_checks', on_delete=OnDelete.CASCADE)),
                ('slot', fields.CharField(max_length=40)),
                ('milestone', fields.ForeignKeyField('milestones.Milestone', source_field='milestone_id', null=True, db_constraint=True, to_field='id', related_name='gate_checks', on_delete=OnDelete.CASCADE)),
                ('name', fields.CharField(max_length=255)),
                ('kind', fields.CharEnumField(description='CHECK_RUN: check_run\nSTATUS: status', enum_type=CheckKind, max_length=10)),
                ('head_sha', fields.CharField(max_length=64)),
                ('github_id', fields.BigIntField(null=True)),
                ('digest', fields.CharField(max_length=64)),
                ('conclusion', fields.CharField(max_length=20)),
                ('active', fields.BooleanField(default=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'gate_check', 'app': 'milestones', 'unique_together': (('pull_request', 'slot'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Outbox',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('topic', fields.CharField(max_length=40)),
                ('subject', fields.BigIntField()),
                ('first_marked_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('last_marked_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('generation', fields.IntField(default=1)),
                ('forced', fields.BooleanField(default=False)),
                ('attempts', fields.IntField(default=0)),
                ('not_before', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('locked_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_error', fields.TextField(null=True, unique=False)),
            ],
            options={'table': 'outbox', 'app': 'milestones', 'unique_together': (('topic', 'subject'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='PullRequest',
            name='files_checked_sha',
            field=fields.CharField(null=True, max_length=64),
        ),
    ]
