from tortoise import migrations
from tortoise.migrations import operations as ops
from core.migrations._operations import AddFieldKeepingRows
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('milestones', '0013_digest_leases')]

    initial = False

    operations = [
        ops.AddField(
            model_name='TestResult',
            name='cause',
            field=fields.TextField(null=True, unique=False),
        ),
        ops.AddField(
            model_name='TestResult',
            name='cause_frame',
            field=fields.TextField(null=True, unique=False),
        ),
        AddFieldKeepingRows(
            model_name='MilestoneTest',
            name='flaky_recent',
            field=fields.CharField(default='', max_length=10),
            db_default='',
        ),
        ops.AddField(
            model_name='Defect',
            name='affects',
            field=fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads),
        ),
        ops.CreateModel(
            name='DefectLink',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('defect', fields.ForeignKeyField('milestones.Defect', source_field='defect_id', db_constraint=True, to_field='id', related_name='links', on_delete=OnDelete.CASCADE)),
                ('test_case', fields.ForeignKeyField('milestones.TestCase', source_field='test_case_id', db_constraint=True, to_field='id', related_name='defect_links', on_delete=OnDelete.CASCADE)),
            ],
            options={'table': 'defect_link', 'app': 'milestones', 'unique_together': (('defect', 'test_case'),), 'indexes': [Index(fields=['test_case_id'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Quarantine',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('milestone', fields.ForeignKeyField('milestones.Milestone', source_field='milestone_id', db_constraint=True, to_field='id', related_name='quarantine', on_delete=OnDelete.CASCADE)),
                ('test_case', fields.ForeignKeyField('milestones.TestCase', source_field='test_case_id', db_constraint=True, to_field='id', related_name='quarantines', on_delete=OnDelete.CASCADE)),
                ('source', fields.CharField(max_length=10)),
                ('reason', fields.TextField(default='', unique=False)),
                ('expires_on', fields.DateField(null=True)),
                ('added_by', fields.CharField(max_length=100)),
                ('added_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('released_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('released_by', fields.CharField(null=True, max_length=100)),
                ('release_reason', fields.TextField(null=True, unique=False)),
                ('active_test', fields.IntField(null=True)),
            ],
            options={'table': 'quarantine', 'app': 'milestones', 'unique_together': (('milestone', 'active_test'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]
