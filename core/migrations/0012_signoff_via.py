from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields


class Migration(migrations.Migration):
    dependencies = [('milestones', '0011_lifecycle')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Signoff',
            name='via',
            field=fields.CharField(max_length=8, default='slack'),
        ),
    ]
