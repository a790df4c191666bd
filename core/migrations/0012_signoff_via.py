from tortoise import migrations
from core.migrations._operations import AddFieldKeepingRows
from tortoise import fields


class Migration(migrations.Migration):
    dependencies = [('milestones', '0011_lifecycle')]

    initial = False

    operations = [
        # Decisions recorded before the milestone page could take them were made in Slack.
        AddFieldKeepingRows(
            model_name='Signoff',
            name='via',
            field=fields.CharField(max_length=8, default='slack'),
            db_default='slack',
        ),
    ]
