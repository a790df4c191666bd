from tortoise import migrations
from tortoise.migrations import operations as ops
from core.migrations._operations import AddFieldKeepingRows
import functools
from core.enums import Lifecycle
from json import dumps, loads
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('milestones', '0010_github_ids')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Milestone',
            name='start_date',
            field=fields.DateField(null=True),
        ),
        AddFieldKeepingRows(
            model_name='Milestone',
            name='tags',
            field=fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads),
            db_default=[],
        ),
        ops.AddField(
            model_name='Milestone',
            name='copied_policy',
            field=fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads),
        ),
        AddFieldKeepingRows(
            model_name='Milestone',
            name='lifecycle',
            field=fields.CharEnumField(default=Lifecycle.ACTIVE, description='PLANNED: planned\nACTIVE: active\nCOMPLETED: completed\nOVERDUE: overdue\nCLOSED: closed', enum_type=Lifecycle, max_length=10),
            db_default='active',
        ),
        ops.AddField(
            model_name='Subscription',
            name='tag',
            field=fields.CharField(null=True, max_length=40),
        ),
        # Existing milestones: completed when their gate completed, closed when closed without
        # completing, active otherwise (the next evaluation finds planned or overdue ones).
        ops.RunSQL(
            [
                "UPDATE milestone SET lifecycle = 'completed' WHERE completed_at IS NOT NULL",
                "UPDATE milestone SET lifecycle = 'closed' WHERE completed_at IS NULL AND state = 'closed'",
            ],
            reverse_sql=[],
        ),
    ]
