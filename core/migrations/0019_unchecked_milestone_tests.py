from tortoise import migrations
from tortoise.fields.base import OnDelete
from tortoise import fields

from core.migrations._operations import UncheckReference


class Migration(migrations.Migration):
    dependencies = [('milestones', '0018_unchecked_test_references')]

    initial = False

    # PostgreSQL checked each new milestone test's milestone with a trigger per row: 170-230 ms
    # of the 50,000 rows a first launch with a milestone inserts, a third of that insert
    # (core.models says why nothing is lost; services.delete_milestone deletes the rows).
    operations = [
        UncheckReference(
            model_name='MilestoneTest',
            name='milestone',
            field=fields.ForeignKeyField('milestones.Milestone', source_field='milestone_id', db_constraint=False, to_field='id', related_name='tests', on_delete=OnDelete.CASCADE),
        ),
    ]
