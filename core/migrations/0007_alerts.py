from tortoise import migrations
from tortoise.migrations import operations as ops
from core.migrations._operations import AddFieldKeepingRows
import functools
from json import dumps, loads
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('milestones', '0006_digests')]

    initial = False

    operations = [
        AddFieldKeepingRows(
            model_name='ChannelLink',
            name='alerts',
            field=fields.BooleanField(default=True),
            db_default=True,
        ),
        ops.AddField(
            model_name='Milestone',
            name='alerted',
            field=fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads),
        ),
    ]
