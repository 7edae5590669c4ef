"""The example answers of ../shared/seeds, as published (only their `...` placeholders removed)."""

from __future__ import annotations

MESSAGE_STATUS_JSON = b"""{
    "success": true,
    "code": 200,
    "number": "0600000000",
    "messageId": "1111",
    "stopSms": false,
    "date": "2015-02-07 22:39:46",
    "statut": "Delivered",
    "cost": 0.045,
    "countryCode": "FR",
    "currency": "EUR"
}"""

# No XML example is published for message-status: entries follow the JSON keys' order.
MESSAGE_STATUS_XML = b"""<?xml version='1.0' encoding='UTF-8'?>
<result>
    <entry>true</entry>
    <entry>200</entry>
    <entry><![CDATA[0600000000]]></entry>
    <entry><![CDATA[1111]]></entry>
    <entry>false</entry>
    <entry><![CDATA[2015-02-07 22:39:46]]></entry>
    <entry><![CDATA[Delivered]]></entry>
    <entry>0.045</entry>
    <entry><![CDATA[FR]]></entry>
    <entry><![CDATA[EUR]]></entry>
</result>"""

MULTI_STATUS_JSON = b"""{
    "success": true,
    "code": 200,
    "StatutResponse_List": [
        {
            "success": true,
            "code": 200,
            "phoneNumber": "+33699999993",
            "messageId": 111111,
            "status": "Delivered",
            "date": "1517934416",
            "stopSms": "0",
            "isSpam": "0"
        },
        {
            "success": false,
            "code": 4,
            "phoneNumber": "+33699999992",
            "messageId": 1000,
            "status": "Num\xc3\xa9ro introuvable"
        },
        {
            "success": false,
            "code": 4,
            "phoneNumber": "+33699999991",
            "messageId": 1222,
            "status": "Num\xc3\xa9ro introuvable"
        }
    ]
}"""
MULTI_STATUS_JSON_PAIRS = [("+33699999993", 111111), ("+33699999992", 1000), ("+33699999991", 1222)]

MULTI_STATUS_XML = """<?xml version='1.0' encoding='UTF-8'?>
<result>
    <entry>true</entry>
    <entry>200</entry>
    <entry>
        <entry>
            <entry>true</entry>
            <entry>200</entry>
            <entry>
                <![CDATA[+33619922264]]>
            </entry>
            <entry>1226613</entry>
            <entry>
                <![CDATA[Delivered]]>
            </entry>
            <entry>
                <![CDATA[1517934416]]>
            </entry>
            <entry>
                <![CDATA[0]]>
            </entry>
            <entry>
                <![CDATA[0]]>
            </entry>
        </entry>
        <entry>
            <entry>false</entry>
            <entry>4</entry>
            <entry>
                <![CDATA[+33699999992]]>
            </entry>
            <entry>1000</entry>
            <entry>
                <![CDATA[Numéro introuvable]]>
            </entry>
        </entry>
        <entry>
            <entry>false</entry>
            <entry>4</entry>
            <entry>
                <![CDATA[+33699999991]]>
            </entry>
            <entry>1222</entry>
            <entry>
                <![CDATA[Numéro introuvable]]>
            </entry>
        </entry>
    </entry>
</result>""".encode()
MULTI_STATUS_XML_PAIRS = [("+33619922264", 1226613), ("+33699999992", 1000), ("+33699999991", 1222)]

BULK_STATUS_JSON = b"""{ "success": true, "code": 200, "message_id": "111", "StatutResponse_List": [
{ "phoneNumber": "+336XXXXXXX1", "status": "Delivered", "stopSMS": false, "date": "1517989111" },
{ "phoneNumber": "+336XXXXXXX2", "status": "Delivered", "stopSMS": false, "date": "1517989101" } ] }"""

BULK_STATUS_XML = b"""<?xml version='1.0' encoding='UTF-8'?> <result> <entry>true</entry>
<entry>200</entry> <entry> <![CDATA[11]]> </entry> <entry> <entry> <entry>
<![CDATA[+336XXXXXXX1]]> </entry> <entry> <![CDATA[Delivered]]> </entry> <entry>false</entry>
<entry> <![CDATA[1517989111]]> </entry> </entry> <entry> <entry> <![CDATA[+336XXXXXXX2]]>
</entry> <entry> <![CDATA[Delivered]]> </entry> <entry>false</entry> <entry>
<![CDATA[1517989086]]> </entry> </entry> </entry> </result>"""

TAG_JSON = b"""{
    "success": true,
    "code": 200,
    "currentPage": 1,
    "total": 2,
    "StatutResponse_List": [
        {
            "phoneNumber": "+336XXXXXXX1",
            "status": "Delivered",
            "stopSMS": false,
            "date": "1517989111"
        },
        {
            "phoneNumber": "+336XXXXXXX2",
            "status": "Delivered",
            "stopSMS": false,
            "date": "1517989101"
        }
    ]
}"""

TAG_XML = b"""<?xml version='1.0' encoding='UTF-8'?>
<result>
    <entry>true</entry>
    <entry>200</entry>
    <entry>1</entry>
    <entry>2</entry>
    <entry>
        <entry>
            <entry><![CDATA[+336XXXXXXX1]]></entry>
            <entry><![CDATA[Delivered]]></entry>
            <entry>false</entry>
            <entry><![CDATA[1517989111]]></entry>
        </entry>
        <entry>
            <entry><![CDATA[+336XXXXXXX2]]></entry>
            <entry><![CDATA[Delivered]]></entry>
            <entry>false</entry>
            <entry><![CDATA[1517989086]]></entry>
        </entry>
    </entry>
</result>"""

ERROR_JSON = """{
    "success": false,
    "code": 10,
    "message": "Clé API incorrecte"
}""".encode()

ERROR_XML = """<?xml version='1.0' encoding='UTF-8'?>
<result>
    <entry>false</entry>
    <entry>10</entry>
    <entry>Clé API incorrecte</entry>
</result>""".encode()
