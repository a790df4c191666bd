from tortoise import migrations
from tortoise.fields.base import OnDelete
from tortoise import fields

from core.migrations._operations import UncheckReference


class Migration(migrations.Migration):
    dependencies = [('milestones', '0017_unchecked_references')]

    initial = False

    # PostgreSQL checked each new test case's repository and each new milestone test's test case
    # with a trigger per row, and queued one for each row updated: a quarter of a first launch of
    # 50,000 tests with a milestone (core.models says why nothing is lost).
    operations = [
        UncheckReference(
            model_name='MilestoneTest',
            name='test_case',
            field=fields.ForeignKeyField('milestones.TestCase', source_field='test_case_id', db_constraint=False, to_field='id', related_name='milestone_states', on_delete=OnDelete.CASCADE),
        ),
        UncheckReference(
            model_name='TestCase',
            name='repository',
            field=fields.ForeignKeyField('milestones.Repository', source_field='repository_id', db_constraint=False, to_field='id', related_name='test_cases', on_delete=OnDelete.CASCADE),
        ),
    ]
