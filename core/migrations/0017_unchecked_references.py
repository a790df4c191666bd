from tortoise import migrations
from tortoise.fields.base import OnDelete
from tortoise import fields

from core.migrations._operations import UncheckReference


class Migration(migrations.Migration):
    dependencies = [('milestones', '0016_milestone_test_room')]

    initial = False

    # PostgreSQL checked each stored result's launch and test case, and each milestone test's
    # latest and failing-since launch, with a trigger per row: more time than storing the rows
    # of a 50,000-test launch (core.models says why nothing is lost).
    operations = [
        UncheckReference(
            model_name='MilestoneTest',
            name='failing_since',
            field=fields.ForeignKeyField('milestones.Launch', source_field='failing_since_id', null=True, db_constraint=False, to_field='id', related_name='failing_since_in', on_delete=OnDelete.SET_NULL),
        ),
        UncheckReference(
            model_name='MilestoneTest',
            name='latest_launch',
            field=fields.ForeignKeyField('milestones.Launch', source_field='latest_launch_id', null=True, db_constraint=False, to_field='id', related_name='latest_in', on_delete=OnDelete.SET_NULL),
        ),
        UncheckReference(
            model_name='TestResult',
            name='launch',
            field=fields.ForeignKeyField('milestones.Launch', source_field='launch_id', db_constraint=False, to_field='id', related_name='results', on_delete=OnDelete.CASCADE),
        ),
        UncheckReference(
            model_name='TestResult',
            name='test_case',
            field=fields.ForeignKeyField('milestones.TestCase', source_field='test_case_id', db_constraint=False, to_field='id', related_name='results', on_delete=OnDelete.CASCADE),
        ),
    ]
